// The Hocuspocus peer for the ykeep benchmarks: @hocuspocus/server with its SQLite extension,
// so documents persist as ykeep's do. No auth extension (any token is accepted).
// env PORT (required), HOCUSPOCUS_DB (SQLite file, default ./hocuspocus.sqlite).
const { Server } = require('@hocuspocus/server');
const { SQLite } = require('@hocuspocus/extension-sqlite');

const port = Number(process.env.PORT);
const server = new Server({
  port,
  address: '127.0.0.1',
  quiet: true,
  extensions: [new SQLite({ database: process.env.HOCUSPOCUS_DB || 'hocuspocus.sqlite' })],
});
server.listen().then(() => {
  console.log(`hocuspocus listening on 127.0.0.1:${port}`);
});
