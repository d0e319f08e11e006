// The Node socket.io peer: the same bench events, payloads and ack shapes as Parley's bench module.
// bench/run.py installs socket.io into a temporary folder and runs: node node_peer.js PORT MODULES_DIR
const path = require('path');
const { Server } = require(path.join(process.argv[3], 'socket.io'));
const port = parseInt(process.argv[2], 10);
const srv = require('http').createServer();
const io = new Server(srv, {
  transports: ['websocket'], pingInterval: 25000, pingTimeout: 20000,
  perMessageDeflate: false, httpCompression: false, serveClient: false, maxHttpBufferSize: 1e6,
});
const answer = (ack, data) => { if (typeof ack === 'function') ack({ ok: true, data }); };
io.on('connection', (socket) => {
  // Parley's counterpart of a connect: the socket's state in one event (the storm case waits for it)
  socket.emit('session:ready', {
    user: { id: socket.id, username: 'bench', display_name: 'bench' },
    session_id: null, rooms: [...socket.rooms], server_time: new Date().toISOString(),
  });
  socket.on('bench:ping', (data, ack) => answer(ack, data));
  socket.on('bench:join', (payload, ack) => { socket.join(payload.room); answer(ack, { room: payload.room }); });
  socket.on('bench:bcast', (payload, ack) => {
    io.to(payload.room).emit('bench:msg', payload.data);
    answer(ack, { room: payload.room });
  });
});
srv.listen(port, '127.0.0.1', () => console.log('READY'));
process.on('SIGTERM', () => process.exit(0));
