"""The operator API: its gRPC server and client, authentication and the shared gRPC services."""
