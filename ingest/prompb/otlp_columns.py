"""OTLP's ``ExportMetricsServiceRequest`` read with each number data point's attributes left as bytes.

The same wire format as OpenTelemetry's own messages, copied from them with one change:
``NumberDataPoint.attributes`` (gauges and sums) is declared ``bytes`` where it is ``KeyValue``, so
parsing hands each point's attributes over as a tuple of bytes: a key that is decoded once and then
known, as an exporter sends the same attribute sets again and again.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2


def _copy(file) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    return proto


def _request_class():
    pool = descriptor_pool.DescriptorPool()
    for file in (common_pb2.DESCRIPTOR, resource_pb2.DESCRIPTOR):
        pool.Add(_copy(file))
    metrics = _copy(metrics_pb2.DESCRIPTOR)
    (point,) = [m for m in metrics.message_type if m.name == "NumberDataPoint"]
    (attributes,) = [f for f in point.field if f.name == "attributes"]
    attributes.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    attributes.ClearField("type_name")
    pool.Add(metrics)
    pool.Add(_copy(metrics_service_pb2.DESCRIPTOR))
    name = metrics_service_pb2.ExportMetricsServiceRequest.DESCRIPTOR.full_name
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


ExportColumns = _request_class()
