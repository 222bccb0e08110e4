"""Remote write's ``WriteRequest`` read with its labels and samples left as bytes.

The same wire format as ``remote.proto`` (``WriteRequest`` fields 1 and 3, ``TimeSeries`` fields 1 to
4), declared with ``bytes`` where it has messages: parsing hands each series' labels over as one tuple
of bytes (a key that needs no decoding once seen) and its samples as bytes read in bulk into arrays.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "pulseboard.remote_write_columns"


def _messages():
    file = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto3")
    series = file.message_type.add(name="TimeSeries")
    for name, number in (("labels", 1), ("samples", 2), ("exemplars", 3), ("histograms", 4)):
        series.field.add(name=name, number=number, label=_FIELD.LABEL_REPEATED, type=_FIELD.TYPE_BYTES)
    request = file.message_type.add(name="WriteRequest")
    request.field.add(
        name="timeseries",
        number=1,
        label=_FIELD.LABEL_REPEATED,
        type=_FIELD.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.TimeSeries",
    )
    request.field.add(name="metadata", number=3, label=_FIELD.LABEL_REPEATED, type=_FIELD.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.WriteRequest"))


WriteRequestColumns = _messages()
