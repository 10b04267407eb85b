// The Socket.IO seed of issue #13 as a cluster, the peer of issue #14's cross-node figures: run it
// as two (or more) Node processes on different ports with the same Redis, each with
// @socket.io/redis-adapter. Not part of the library; measured, not tuned.
//
// Differences from socketio_seed.js, both needed for more than one process:
// - the seed's Map userId -> socket.id is per process, so a sender on node 1 could not find a
//   user on node 2; instead each socket joins a room named after its user id on `register`, and
//   `private message` emits to that room (`io.to(userId)`), the way Socket.IO's documentation
//   addresses a user across a cluster;
// - `io.adapter(createAdapter(pub, sub))`: every emit to a room is published to Redis, and every
//   node receives it and delivers it to its local members (the adapter broadcasts; it does not
//   know which node holds the recipient).
// Rooms (`join`, `say`) are as in the seed. Same transports: ['websocket'] as the seed's benchmark.
//
// usage: node socketio_cluster.js PORT [REDIS_URL]   (default redis://127.0.0.1:6379)
'use strict';
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const port = Number(process.argv[2] || 8090);
const url = process.argv[3] || 'redis://127.0.0.1:6379';

async function main() {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  pub.on('error', (e) => console.error('redis pub:', e.message));
  sub.on('error', (e) => console.error('redis sub:', e.message));
  await Promise.all([pub.connect(), sub.connect()]);
  const io = new Server(port, { transports: ['websocket'], adapter: createAdapter(pub, sub) });

  io.on('connection', (socket) => {
    socket.on('register', (userId, ack) => {
      socket.userId = userId;
      socket.join(userId);
      if (typeof ack === 'function') ack('ok');
    });

    socket.on('private message', ({ to, text }) => {
      io.to(to).emit('private message', { from: socket.userId, text });
    });

    socket.on('join', (room, ack) => {
      socket.join(room);
      if (typeof ack === 'function') ack('ok');
    });

    socket.on('say', ({ room, text }) => {
      socket.to(room).emit('room message', { room, from: socket.userId, text });
    });
  });

  console.log(`socketio_cluster listening on ${port}, redis ${url}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
