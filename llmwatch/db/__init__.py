"""ClickHouse access: connection (client), migrations, row mapping (tables), and the query endpoint (owner)
that lets other processes read the embedded chDB folder while one process holds it."""
