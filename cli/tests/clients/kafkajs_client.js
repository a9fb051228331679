// kafkajs (2.2.4) commands for cli/tests/kafka_clients.rs: the produce/consume conformance
// matrix with every codec, admin (create, describe, alter configs, delete, metadata at the
// advertised address).
//
// Codecs: none and gzip are built in; snappy comes from the codec plugin kafkajs-snappy (pure
// JS); lz4 and zstd from four-line codecs below over lz4-napi (LZ4 frames, independent blocks, as
// Kafka wants) and @mongodb-js/zstd, whose prebuilt N-API binaries come as npm packages, so
// nothing is compiled at install. The npm codec plugins are not used for those two:
// kafkajs-lz4 1.2.1 depends on lz4 0.6.5, whose published package carries macOS binaries that
// Linux cannot load (rebuilding needs its install script and a C++ toolchain), and @kafkajs/zstd
// depends on cppzst, whose native build fails against Node 20's headers (C++17 required).
//
// Reading: kafkajs's only consumer is a group consumer, and weir has no group APIs yet, so
// records are read with kafkajs's own Cluster and Broker.fetch (its fetch request, record batch
// decoding and codecs, the same code its consumer uses) reached through the Kafka object's
// private cluster factory. Pinned to kafkajs 2.2.4 by package-lock.json.
//
// Records and output lines are those of clients.py (see its header).
'use strict'
const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4 = require('lz4-napi')
const zstd = require('@mongodb-js/zstd')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: async encoder => lz4.compressFrame(encoder.buffer),
  decompress: async buffer => lz4.decompressFrame(buffer),
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: async encoder => zstd.compress(encoder.buffer, 3),
  decompress: async buffer => zstd.decompress(buffer),
})

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}
const KEYS = 37
const DYNAMIC_TOPIC_CONFIG = 1

function record(i, baseTs, acks) {
  const key = `k${i % KEYS}`
  const value = `${key}/${i}/${'weir'.repeat(i % 13)}`
  const headers = { seq: String(i) }
  if (i % 2 === 0) headers.acks = acks
  return { key, value, headers, timestamp: String(baseTs + i) }
}

function runs(n) {
  const b = [0, Math.floor(n / 3), Math.floor((2 * n) / 3), n]
  return [['0', b[0], b[1]], ['1', b[1], b[2]], ['all', b[2], b[3]]]
}

const kafka = bootstrap =>
  new Kafka({ clientId: 'weir-tests', brokers: [bootstrap], logLevel: logLevel.ERROR, retry: { retries: 3 } })

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${typeof what === 'string' ? what : JSON.stringify(what)}`)
}

async function produce(bootstrap, topic, codec, n, baseTs) {
  assert(codec in CODECS, `unknown codec ${codec}`)
  for (const [acks, first, end] of runs(n)) {
    // kafkajs's default is not idempotent: it is switched on for acks=all (one request in flight,
    // as kafkajs requires for idempotence).
    const idempotent = acks === 'all'
    const p = kafka(bootstrap).producer({ idempotent, maxInFlightRequests: idempotent ? 1 : undefined })
    await p.connect()
    const batch = 500
    for (let start = first; start < end; start += batch) {
      const messages = []
      for (let i = start; i < Math.min(end, start + batch); i++) messages.push(record(i, baseTs, acks))
      await p.send({ topic, acks: acks === 'all' ? -1 : Number(acks), compression: CODECS[codec], messages })
    }
    await p.disconnect()
    // The next run is a new producer, maybe on another shard: it starts once this run's records
    // are stored (see clients.py's header).
    await waitStored(bootstrap, topic, end, `acks=${acks} run`)
  }
}

// Returns once the topic's end offsets add up to `expected`; fails naming `what` past 60 s.
async function waitStored(bootstrap, topic, expected, what) {
  const admin = kafka(bootstrap).admin()
  await admin.connect()
  try {
    const deadline = Date.now() + 60000
    for (;;) {
      const offsets = await admin.fetchTopicOffsets(topic)
      const stored = offsets.reduce((sum, o) => sum + Number(o.high), 0)
      if (stored >= expected) return
      if (Date.now() > deadline) throw new Error(`${what}: ${stored} of ${expected} records stored after 60 s`)
      await new Promise(r => setTimeout(r, 50))
    }
  } finally {
    await admin.disconnect()
  }
}

function line(partition, m) {
  const hs = Object.entries(m.headers || {})
    .map(([k, v]) => `${k}=${v === null ? '' : v.toString()}`)
    .join(',')
  return `${partition}\t${m.offset}\t${m.timestamp}\t${m.key}\t${m.value}\t${hs}\n`
}

async function consume(bootstrap, topic, partitions, expected) {
  const k = kafka(bootstrap)
  const admin = k.admin()
  await admin.connect()
  let ends
  const deadline = Date.now() + 60000
  for (;;) {
    const offsets = await admin.fetchTopicOffsets(topic)
    ends = new Map(offsets.map(o => [o.partition, Number(o.high)]))
    const total = [...ends.values()].reduce((a, b) => a + b, 0)
    if (total >= expected || Date.now() > deadline) break
    await new Promise(r => setTimeout(r, 100))
  }
  assert(ends.size === partitions, `${ends.size} partitions, expected ${partitions}`)
  const createCluster = Object.getOwnPropertySymbols(k).find(s => String(s).includes('createCluster'))
  const cluster = k[createCluster]({})
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  await cluster.refreshMetadata()
  const out = []
  for (let partition = 0; partition < partitions; partition++) {
    const [leader] = Object.keys(cluster.findLeaderForPartitions(topic, [partition]))
    const broker = await cluster.findBroker({ nodeId: leader })
    let offset = 0
    while (offset < ends.get(partition) && Date.now() < deadline) {
      const response = await broker.fetch({
        maxWaitTime: 100,
        topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: 1 << 20 }] }],
      })
      const [p] = response.responses[0].partitions
      assert(p.errorCode === 0, p)
      for (const m of p.messages) {
        // A compressed batch is returned whole: skip its records before the fetch offset.
        if (Number(m.offset) < offset) continue
        assert(!m.isControlRecord, m)
        out.push(line(partition, m))
        offset = Number(m.offset) + 1
      }
    }
  }
  await cluster.disconnect()
  await admin.disconnect()
  process.stdout.write(out.join(''))
}

async function create(bootstrap, topic, numPartitions) {
  const admin = kafka(bootstrap).admin()
  await admin.connect()
  assert(await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions }] }), 'not created')
  await admin.disconnect()
}

async function describe(admin, topic) {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
  })
  assert(resources.length === 1 && resources[0].errorCode === 0, resources)
  return Object.fromEntries(resources[0].configEntries.map(e => [e.configName, [e.configValue, e.configSource]]))
}

async function adminCmd(bootstrap, advertised) {
  const admin = kafka(bootstrap).admin()
  await admin.connect()
  const cluster = await admin.describeCluster()
  const [host, port] = [advertised.slice(0, advertised.lastIndexOf(':')), Number(advertised.slice(advertised.lastIndexOf(':') + 1))]
  assert(cluster.brokers.length === 1 && cluster.brokers[0].host === host && cluster.brokers[0].port === port, cluster)
  assert(cluster.clusterId, cluster)
  const topic = 'cfg-js'
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
  })
  assert(created === true, 'createTopics returned false')
  assert((await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })) === false, 'second create should report false')
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert(md.topics[0].partitions.length === 3, md)
  const d = await describe(admin, topic)
  assert(d['retention.ms'][0] === '3600000' && d['retention.ms'][1] === DYNAMIC_TOPIC_CONFIG, d)
  assert(d['segment.bytes'][0] === '8388608' && d['segment.bytes'][1] !== DYNAMIC_TOPIC_CONFIG, d)
  await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] })
  assert((await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions.length === 5, 'partitions')
  await admin.deleteTopics({ topics: [topic] })
  assert(!(await admin.listTopics()).includes(topic), 'deleted topic still listed')
  await admin.disconnect()
  console.log('admin ok')
}

async function alterCmd(bootstrap) {
  const admin = kafka(bootstrap).admin()
  await admin.connect()
  const topic = 'alter-js'
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
  })
  const alter = (configEntries, validateOnly = false) =>
    admin.alterConfigs({ validateOnly, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries }] })
  // AlterConfigs replaces the topic's whole set of overrides: retention.ms falls back.
  await alter([{ name: 'retention.bytes', value: '1048576' }])
  let d = await describe(admin, topic)
  assert(d['retention.bytes'][0] === '1048576' && d['retention.bytes'][1] === DYNAMIC_TOPIC_CONFIG, d)
  assert(d['retention.ms'][0] !== '3600000' && d['retention.ms'][1] !== DYNAMIC_TOPIC_CONFIG, d)
  await alter([{ name: 'retention.ms', value: '5' }], true)
  assert(JSON.stringify(await describe(admin, topic)) === JSON.stringify(d), 'validateOnly changed the configs')
  let failed = null
  try {
    await alter([{ name: 'no.such.config', value: '1' }])
  } catch (e) {
    failed = e
  }
  assert(failed && failed.type === 'INVALID_CONFIG', `unknown config: ${failed}`)
  assert(JSON.stringify(await describe(admin, topic)) === JSON.stringify(d), 'a failed alter changed the configs')
  await admin.deleteTopics({ topics: [topic] })
  await admin.disconnect()
  console.log('alter ok')
}

async function main() {
  const [cmd, bootstrap, ...rest] = process.argv.slice(2)
  if (cmd === 'produce') await produce(bootstrap, rest[0], rest[1], Number(rest[2]), Number(rest[3]))
  else if (cmd === 'consume') await consume(bootstrap, rest[0], Number(rest[1]), Number(rest[2]))
  else if (cmd === 'create') await create(bootstrap, rest[0], Number(rest[1]))
  else if (cmd === 'admin') await adminCmd(bootstrap, rest[0])
  else if (cmd === 'alter') await alterCmd(bootstrap)
  else throw new Error(`unknown command ${cmd}`)
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
