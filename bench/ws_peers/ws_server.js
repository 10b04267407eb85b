// A plain Node `ws` server doing switchboard's routing with the JSON of switchboard.json
// (docs/protocol.md, "JSON wire format"): register, msg, join, say, with the same replies and
// events for those four. A peer for scripts/bench-ws (issue #13); not part of the library.
//
// What it keeps of switchboard's semantics: names are unique (a second `register` of a held
// name is `name-taken`), `msg` to nobody is `user-not-found`, `say` needs membership and goes to
// every member but the sender, each join is told to the members already there. What it leaves
// out: name and text validation, rate limits, output bounds (Node buffers without limit), rooms'
// and sessions' limits, every other command.
//
// usage: node ws_server.js PORT
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8091);
const wss = new WebSocketServer({
  port,
  path: '/ws',
  handleProtocols: (protocols) => (protocols.has('switchboard.json') ? 'switchboard.json' : false),
});
const users = new Map(); // name -> ws
const rooms = new Map(); // room -> Set of ws

const error = (ws, code, command, argument) =>
  ws.send(JSON.stringify(argument === undefined ? { type: 'error', error: code, command }
                                                 : { type: 'error', error: code, command, argument }));

wss.on('connection', (ws) => {
  ws.user = undefined;
  ws.rooms = new Set();
  ws.on('message', (data) => {
    let m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      ws.send('{"type":"error","error":"invalid-json"}');
      return;
    }
    switch (m.type) {
      case 'register':
        if (ws.user !== undefined) return error(ws, 'already-registered', 'register', m.user);
        if (users.has(m.user)) return error(ws, 'name-taken', 'register', m.user);
        ws.user = m.user;
        users.set(m.user, ws);
        ws.send(JSON.stringify({ type: 'ok', command: 'register', user: m.user }));
        return;
      case 'msg': {
        if (ws.user === undefined) return error(ws, 'not-registered', 'msg');
        const to = users.get(m.to);
        if (!to) return error(ws, 'user-not-found', 'msg', m.to);
        to.send(JSON.stringify({ type: 'msg', from: ws.user, text: m.text }));
        return;
      }
      case 'join': {
        if (ws.user === undefined) return error(ws, 'not-registered', 'join');
        let members = rooms.get(m.room);
        if (!members) rooms.set(m.room, (members = new Set()));
        if (members.has(ws)) return error(ws, 'already-member', 'join', m.room);
        ws.send(JSON.stringify({ type: 'ok', command: 'join', room: m.room }));
        const event = JSON.stringify({ type: 'join', room: m.room, user: ws.user });
        for (const member of members) member.send(event);
        members.add(ws);
        ws.rooms.add(m.room);
        return;
      }
      case 'say': {
        const members = rooms.get(m.room);
        if (!members || !members.has(ws)) return error(ws, 'not-member', 'say', m.room);
        const event = JSON.stringify({ type: 'room', room: m.room, from: ws.user, text: m.text });
        for (const member of members) if (member !== ws) member.send(event);
        return;
      }
      default:
        ws.send(JSON.stringify({ type: 'error', error: 'unknown-command', argument: String(m.type) }));
    }
  });
  ws.on('close', () => {
    if (ws.user !== undefined && users.get(ws.user) === ws) users.delete(ws.user);
    for (const room of ws.rooms) {
      const members = rooms.get(room);
      members.delete(ws);
      if (members.size === 0) rooms.delete(room);
    }
  });
});

console.log(`ws_server listening on ${port}`);
