// kafkajs (2.2.4) group member for cli/tests/consumer_groups.rs, the counterpart of groups.py's
// `consume` (same output lines):
//   consume BOOTSTRAP GROUP TOPIC OUT STOP
// appends "assigned p,p,..." after each join and "rec PARTITION OFFSET VALUE" per record to OUT,
// commits each batch's offsets before taking the next, and leaves the group cleanly (disconnect)
// once file STOP exists.
'use strict'
const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

async function consume(bootstrap, group, topic, out, stop) {
  const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING, clientId: 'kafkajs-groups' })
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 })
  consumer.on(consumer.events.GROUP_JOIN, e => {
    const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    fs.appendFileSync(out, 'assigned ' + parts.join(',') + '\n')
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      let lines = ''
      for (const m of batch.messages) {
        lines += `rec ${batch.partition} ${m.offset} ${m.value.toString()}\n`
      }
      if (batch.messages.length === 0) return
      fs.appendFileSync(out, lines)
      const last = batch.messages[batch.messages.length - 1].offset
      await consumer.commitOffsets([{ topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
      resolveOffset(last)
      await heartbeat()
    },
  })
  await new Promise(resolve => {
    const t = setInterval(() => {
      if (fs.existsSync(stop)) {
        clearInterval(t)
        resolve()
      }
    }, 100)
  })
  await consumer.disconnect()
}

const [cmd, ...args] = process.argv.slice(2)
if (cmd !== 'consume') {
  console.error('unknown command ' + cmd)
  process.exit(2)
}
consume(...args).then(() => process.exit(0), e => {
  console.error(e)
  process.exit(1)
})
