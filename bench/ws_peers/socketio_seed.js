// The Socket.IO seed of issue #13: the classic Socket.IO private-message demo, as a peer for
// scripts/bench-ws. Not part of the library; measured, not tuned.
//
// A Map userId -> socket.id; `register` fills it, `private message` looks the recipient up and
// emits to its socket (`io.to(socketId).emit`); rooms are Socket.IO rooms (`socket.join`, and
// `socket.to(room).emit`, which sends to every member but the sender, as switchboard's `say`
// does). `register` and `join` answer through Socket.IO's acknowledgement callback, so a client
// knows when it may start.
//
// One deviation from the demo, for fairness: `transports: ['websocket']`. The demo also allows
// HTTP long-polling, which a load client would only use for its first round trip before the
// upgrade; here every client speaks Engine.IO v4 over WebSocket from the start, like the other
// servers of the comparison. Everything else is Socket.IO 4's defaults (no compression).
//
// usage: node socketio_seed.js PORT
'use strict';
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 8090);
const io = new Server(port, { transports: ['websocket'] });
const users = new Map(); // userId -> socket.id

io.on('connection', (socket) => {
  socket.on('register', (userId, ack) => {
    socket.userId = userId;
    users.set(userId, socket.id);
    if (typeof ack === 'function') ack('ok');
  });

  socket.on('private message', ({ to, text }) => {
    const socketId = users.get(to);
    if (socketId) io.to(socketId).emit('private message', { from: socket.userId, text });
  });

  socket.on('join', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack('ok');
  });

  socket.on('say', ({ room, text }) => {
    socket.to(room).emit('room message', { room, from: socket.userId, text });
  });

  socket.on('disconnect', () => {
    if (socket.userId !== undefined && users.get(socket.userId) === socket.id) users.delete(socket.userId);
  });
});

console.log(`socketio_seed listening on ${port}`);
