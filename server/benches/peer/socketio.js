// The load benchmark's peer: a Node.js Socket.IO server (no persistence)
// fanning out the same workload as optrail's runs, so that loadbench.rs
// measures both on the same machine in the same run.
//
//   node socketio.js OPERATIONS STEP_MS
//
// Prints "listening on http://127.0.0.1:PORT". Each of OPERATIONS rooms
// gets an event every STEP_MS (started evenly over one step), shaped like
// optrail's `event` frame (seq, happenedAt); a client emits
// `subscribe(operationId)` and is answered `subscribed`. Exits when stdin
// closes.
'use strict';
const path = require('path');
const http = require('http');
const { Server } = require(path.join(__dirname, '../../../.tools/node_modules/socket.io'));

const operations = Number(process.argv[2] || 1);
const stepMs = Number(process.argv[3] || 100);

const server = http.createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false });

io.on('connection', (socket) => {
  socket.on('subscribe', (operationId) => {
    socket.join(operationId);
    socket.emit('subscribed', { operationId, epoch: 1, head: heads[operationId] || 0 });
  });
});

const heads = {};
for (let o = 0; o < operations; o++) {
  const operationId = `op${o}`;
  heads[operationId] = 0;
  setTimeout(() => {
    setInterval(() => {
      const seq = ++heads[operationId];
      io.to(operationId).emit('event', {
        type: 'event',
        operationId,
        epoch: 1,
        event: {
          id: `${operationId}-${seq}`,
          seq,
          type: 'ProgressUpdated',
          message: `Step ${seq}`,
          happenedAt: new Date().toISOString(),
          details: { percentage: (seq % 100) + 0.5 },
        },
      });
    }, stepMs);
  }, (stepMs * o) / operations);
}

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
