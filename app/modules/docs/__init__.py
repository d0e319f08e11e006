"""The socket protocol's documentation: AsyncAPI 2.6, the `/ws-docs` page and TypeScript client types."""
