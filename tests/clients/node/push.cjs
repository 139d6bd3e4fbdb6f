// Pushes log lines to lokal with a real npm Loki client, for tests/clients.rs.
//
// usage: node push.cjs <client> <base-url> <tenant> <run> <count>
//   client: pino | winston-protobuf | winston-json
//
// Line i carries the text "<client> <run> line <i>" and, where the client
// sends it, structured metadata `seq=<i>`. The script waits until the client
// has delivered everything, prints one JSON summary line on stdout and exits
// 0; it exits 1 when the client reported any push error (the Rust test also
// reads every line back, so a silently dropped push fails there).
//
// Modules are found through NODE_PATH (set by the test to
// $LOKAL_TEST_NODE_MODULES), so this file is plain CommonJS.
'use strict'

const [client, base, tenant, run, countText] = process.argv.slice(2)
const count = Number(countText)
if (!client || !base || !tenant || !run || !Number.isInteger(count)) {
  console.error('usage: node push.cjs <client> <base-url> <tenant> <run> <count>')
  process.exit(2)
}

const errors = []
// Both clients report failed pushes on the console and carry on.
const consoleError = console.error
console.error = (...args) => {
  errors.push(args.map(String).join(' '))
  consoleError(...args)
}

function finish (summary) {
  console.log(JSON.stringify({ client, errors, ...summary }))
  process.exit(errors.length === 0 ? 0 : 1)
}

async function pino () {
  const pinoLib = require('pino')
  // The recommended set-up: pino-loki in a worker thread.
  const transport = pinoLib.transport({
    target: 'pino-loki',
    options: {
      host: base,
      headers: { 'X-Scope-OrgID': tenant },
      labels: { app: 'pino-app', run },
      batching: { interval: 0.2, maxBufferSize: 0 }
    }
  })
  const closed = new Promise(resolve => transport.on('close', resolve))
  const logger = pinoLib(transport)
  for (let i = 0; i < count; i++) {
    const level = i % 3 === 0 ? 'warn' : 'info'
    logger[level]({ meta: { seq: i, user: 'u' + (i % 4) } }, `${client} ${run} line ${i}`)
  }
  // The worker thread is unref'd: keep this process alive until it has
  // closed, which pino-loki does only after its last push was answered.
  const keepAlive = setInterval(() => {}, 1000)
  transport.end()
  await closed
  clearInterval(keepAlive)
  finish({ mode: 'json' })
}

async function winston (json) {
  const winstonLib = require('winston')
  const LokiTransport = require('winston-loki')
  const loki = new LokiTransport({
    host: base,
    headers: { 'X-Scope-OrgID': tenant },
    labels: { app: 'winston-app', run, component: json ? 'json' : 'protobuf' },
    json,
    interval: 0.2,
    gracefulShutdown: false,
    onConnectionError: err => errors.push(String(err))
  })
  // winston-loki falls back to JSON silently when the optional `snappy`
  // package does not load; the protobuf test must really send protobuf.
  const mode = loki.batcher.options.json ? 'json' : 'protobuf'
  const logger = winstonLib.createLogger({ transports: [loki] })
  for (let i = 0; i < count; i++) {
    logger.log({ level: i % 2 === 0 ? 'info' : 'error', message: `${client} ${run} line ${i}`, seq: String(i) })
  }
  // Let winston hand every entry to the transport, then wait for delivery.
  await new Promise(resolve => setImmediate(resolve))
  await loki.flush()
  await loki.close()
  finish({ mode })
}

const runners = {
  pino: () => pino(),
  'winston-protobuf': () => winston(false),
  'winston-json': () => winston(true)
}
if (!runners[client]) {
  console.error(`unknown client ${client}`)
  process.exit(2)
}
runners[client]().catch(err => {
  errors.push(String(err && err.stack ? err.stack : err))
  finish({})
})
