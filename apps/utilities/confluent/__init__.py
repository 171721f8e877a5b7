"""Confluent Schema Registry's REST API, spoken by Aurum's schema registry.

An existing Confluent client (serializers, CLI tools, `SchemaRegistryClient`) points its URL at
`/api/v1/registry` and works unchanged, tenant-scoped by its Aurum API token: HTTP Basic with the
token as password (the username is ignored), or a bearer token.

This is an external dialect: it answers in Confluent's shapes, errors included
(`{"error_code": 40401, "message": …}` rather than problem details, since clients parse them), and
it is documented by Confluent's API reference rather than Aurum's OpenAPI document. Only JSON
Schema is stored: AVRO and PROTOBUF schemas are refused with 42201.
"""
