"""Remote write's ``WriteRequest`` read with its series, labels and samples left as bytes.

The same wire format as ``remote.proto`` (``WriteRequest`` fields 1 and 3, ``TimeSeries`` fields 1 to
4), declared with ``bytes`` where it has messages: ``WriteRequestColumns`` hands each series over as
its bytes (read in bulk into arrays), ``TimeSeriesColumns`` one series' labels and samples as bytes.
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
    for name, number in (("timeseries", 1), ("metadata", 3)):
        request.field.add(name=name, number=number, label=_FIELD.LABEL_REPEATED, type=_FIELD.TYPE_BYTES)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("WriteRequest", "TimeSeries")
    )


WriteRequestColumns, TimeSeriesColumns = _messages()
