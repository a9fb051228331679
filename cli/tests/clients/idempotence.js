// kafkajs (2.2.4) idempotent producer for cli/tests/idempotence.rs, through the fault proxy.
//
//   node idempotence.js produce BOOTSTRAP TOPIC N
//       record i: key "k{i % 7}", value "{i}" (as idempotence.py); sends of 10 records, one after
//       another (kafkajs allows one request in flight when idempotent), acks=all, retrying on
//       cut connections. Prints "delivered N" at the end. Records are read back with
//       idempotence.py's consumer.
'use strict'
const { Kafka, logLevel } = require('kafkajs')

async function produce(bootstrap, topic, n) {
  const kafka = new Kafka({
    clientId: 'weir-idempotence',
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    requestTimeout: 10000,
    retry: { retries: 50, initialRetryTime: 20, maxRetryTime: 500 },
  })
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await p.connect()
  let delivered = 0
  for (let first = 0; first < n; first += 10) {
    const messages = []
    for (let i = first; i < Math.min(first + 10, n); i++) {
      messages.push({ key: `k${i % 7}`, value: String(i) })
    }
    await p.send({ topic, messages, acks: -1 })
    delivered += messages.length
  }
  await p.disconnect()
  process.stdout.write(`delivered ${delivered}\n`)
}

async function main() {
  const [cmd, bootstrap, topic, n] = process.argv.slice(2)
  if (cmd !== 'produce') throw new Error(`unknown command ${cmd}`)
  await produce(bootstrap, topic, Number(n))
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
