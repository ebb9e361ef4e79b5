"""The API's endpoints: one module per endpoint group, each with its blueprint."""
