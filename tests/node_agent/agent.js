#!/usr/bin/env node
// A minimal edgeslice site agent written with @grpc/grpc-js from agent.proto alone: a second,
// independent implementation of the agent contract, driven by tests/test_node_agent.py. It loads
// ONLY protos/edgeslice/agent/v1/agent.proto (no generated code, nothing of the Python side).
//
//   node agent.js --target HOST:PORT --site ID [options] [--scenario FILE.json]
//
// Options (flags, or the same keys in the JSON scenario; flags win):
//   --instance ID           Hello.instance_id (default: a random UUID, chosen once per process)
//   --software-version V    Hello.software_version (default: edgeslice-node-agent/0.1.0)
//   --insecure              plaintext (the controller's dev mode); otherwise mutual TLS with
//   --cert F --key F --ca F the client certificate, its key and the CA that signed the controller
//                           (--ca alone: TLS without a client certificate)
//   --applied-generation N, --controller-epoch E, --topology-fingerprint F   sent in Hello
//   --refuse REASON [--refuse-message TEXT]   answer every config with ok=false
//   --no-ack                never answer a config
//   --silent-after-ms N     stop sending anything N ms after Welcome (the stream stays open)
//   --flood-bursts K        right after Welcome, send K * Welcome.max_message_burst heartbeats at once
//   --hello-delay-ms N      wait N ms before sending Hello
//   --no-hello              send a Heartbeat first instead of Hello (a protocol violation)
//   --rollback-after-acks K after its K-th ack the backend "loses" that config: heartbeats report
//                           the generation acked before it, and later configs are not acked
// Scenario-only: "telemetry": a list of batches sent one per telemetry interval once a config is
// applied (the last one is repeated). A batch is {"rows": [KPI], "columns": [KPI], "cpu": 0.1,
// "links": [{"peer", "up", "utilisation"}]}; a KPI is {"slice": NAME, <SliceKpi field>: value};
// a value may be "NaN" or "Infinity". Without "links", the batch reports every peer the config's
// LinkReservations name as up.
//
// Output: one JSON line per event on stdout: connecting, welcome, config, ack (sent), heartbeat
// (sent; "sequence" counts them here, the wire has no such field), flood (sent), telemetry (sent),
// rollback, rejection, silent, end (the stream's gRPC status), protocol-error.
// The agent exits when the stream has ended. Closing stdin (or SIGTERM) half-closes the stream.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const PROTO = 'edgeslice/agent/v1/agent.proto';
const VERSION = 'edgeslice-node-agent/0.1.0';
const FLAGS = new Set(['insecure', 'no-ack', 'no-hello']);
const KPI_FIELDS = [
  'dl_throughput_mbps', 'ul_throughput_mbps', 'dl_demand_mbps', 'ul_demand_mbps',
  'latency_p50_ms', 'latency_p99_ms', 'packet_loss', 'active_devices', 'radio_utilisation',
];
const started = Date.now();

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, t_ms: Date.now() - started, ...fields }) + '\n');
}

function fail(message) {
  process.stderr.write(`agent.js: ${message}\n`);
  process.exit(2);
}

function options(argv) {
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) fail(`unexpected argument ${JSON.stringify(argv[i])}`);
    const key = argv[i].slice(2);
    if (FLAGS.has(key)) flags[key] = true;
    else if (i + 1 < argv.length) flags[key] = argv[++i];
    else fail(`--${key} needs a value`);
  }
  const scenario = flags.scenario ? JSON.parse(fs.readFileSync(flags.scenario, 'utf8')) : {};
  const o = { ...scenario, ...flags };
  for (const key of ['target', 'site']) if (!o[key]) fail(`--${key} is required`);
  if (!o.insecure && !o.ca) fail('give --insecure, or --ca (with --cert and --key for mutual TLS)');
  if (!o.cert !== !o.key) fail('give both --cert and --key, or neither');
  o.instance = o.instance ?? crypto.randomUUID();
  o.telemetry = o.telemetry || [];
  return o;
}

function number(value) {
  return typeof value === 'string' ? Number(value) : value; // "NaN", "Infinity": JSON has neither
}

function kpiRow(kpi) {
  const row = { slice: kpi.slice };
  for (const f of KPI_FIELDS) row[f] = number(kpi[f] ?? 0);
  return row;
}

function kpiColumns(kpis) {
  const cols = { slice: kpis.map((k) => k.slice) };
  for (const f of KPI_FIELDS) cols[f] = kpis.map((k) => number(k[f] ?? 0));
  return cols;
}

function main() {
  const o = options(process.argv.slice(2));
  const definition = protoLoader.loadSync(PROTO, {
    includeDirs: [PROTOS],
    keepCase: true,
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  const v1 = grpc.loadPackageDefinition(definition).edgeslice.agent.v1;
  const credentials = o.insecure
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(
        fs.readFileSync(o.ca),
        o.key ? fs.readFileSync(o.key) : null,
        o.cert ? fs.readFileSync(o.cert) : null,
      );
  const client = new v1.SiteAgent(o.target, credentials);

  let welcome = null;
  let config = null; // the SiteConfig in effect
  let silent = false;
  let ended = false;
  let sequence = 0; // heartbeats sent, for the events printed
  let applied = o['applied-generation'] ?? 0; // the generation in effect (Hello, then acks)
  let acks = 0;
  let lostBackend = false;
  let batchIndex = 0;
  const timers = [];

  emit('connecting', { target: o.target, site: o.site, instance: o.instance, tls: !o.insecure });
  const call = client.Connect();
  const send = (message) => {
    if (!silent && !ended) call.write(message);
  };

  const hello = {
    site_id: o.site,
    software_version: o['software-version'] ?? VERSION,
    applied_generation: o['applied-generation'] ?? 0, // a decimal string keeps all 64 bits
    backend: 'node-memory',
    instance_id: o.instance,
    controller_epoch: o['controller-epoch'] ?? '',
    topology_fingerprint: o['topology-fingerprint'] ?? '',
  };
  const first = o['no-hello'] ? { heartbeat: { applied_generation: 0 } } : { hello };
  setTimeout(() => send(first), Number(o['hello-delay-ms'] ?? 0));

  function sendHeartbeat() {
    sequence += 1;
    send({ heartbeat: { applied_generation: applied } });
  }

  function heartbeat() {
    sendHeartbeat();
    if (!silent) emit('heartbeat', { sequence });
  }

  function flood(count) {
    if (count === 0) emit('protocol-error', { message: 'Welcome.max_message_burst is 0' });
    for (let i = 0; i < count; i++) sendHeartbeat();
    emit('flood', { count });
  }

  function telemetry() {
    if (!config || o.telemetry.length === 0 || silent) return;
    const spec = o.telemetry[Math.min(batchIndex, o.telemetry.length - 1)];
    batchIndex += 1;
    const peers = new Set(config.slices.flatMap((s) => s.links.map((l) => l.peer)));
    const links = spec.links || [...peers].sort().map((peer) => ({ peer, up: true, utilisation: 0.1 }));
    const batch = {
      observed_at_unix_ms: Date.now(),
      slices: (spec.rows || []).map(kpiRow),
      health: {
        cpu_utilisation: number(spec.cpu ?? 0.1),
        links: links.map((l) => ({ ...l, utilisation: number(l.utilisation ?? 0) })),
      },
    };
    if (spec.columns) batch.columns = kpiColumns(spec.columns);
    send({ telemetry: batch });
    emit('telemetry', {
      batch: batchIndex,
      observed_at_unix_ms: batch.observed_at_unix_ms,
      rows: batch.slices.map((r) => r.slice),
      columns: batch.columns ? batch.columns.slice : [],
    });
  }

  function onWelcome(w) {
    welcome = w;
    emit('welcome', w);
    timers.push(setInterval(heartbeat, w.heartbeat_interval_ms || 1000));
    timers.push(setInterval(telemetry, w.telemetry_interval_ms || 1000));
    if (o['flood-bursts'] !== undefined) flood(Math.round(Number(o['flood-bursts']) * w.max_message_burst));
    if (o['silent-after-ms'] !== undefined) {
      timers.push(setTimeout(() => { silent = true; emit('silent'); }, Number(o['silent-after-ms'])));
    }
  }

  function onConfig(c) {
    emit('config', {
      site_id: c.site_id, generation: c.generation, site_kind: c.site_kind, slices: c.slices.map((s) => s.name),
    });
    if (o['no-ack'] || lostBackend) return;
    const ack = o.refuse
      ? { generation: c.generation, ok: false, reason: o.refuse, message: o['refuse-message'] ?? '' }
      : { generation: c.generation, ok: true, reason: '', message: '' };
    const before = applied;
    if (ack.ok) [config, applied] = [c, c.generation]; // a refused config leaves the previous one
    send({ ack });
    if (!silent) emit('ack', { generation: ack.generation, ok: ack.ok, reason: ack.reason });
    acks += 1;
    if (ack.ok && acks === Number(o['rollback-after-acks'])) {
      [applied, lostBackend] = [before, true];
      emit('rollback', { applied });
    }
  }

  call.on('data', (m) => {
    if (!welcome && m.body !== 'welcome') {
      emit('protocol-error', { message: `the first message was ${m.body}, not welcome` });
    }
    if (m.body === 'welcome') onWelcome(m.welcome);
    else if (m.body === 'config') onConfig(m.config);
    else if (m.body === 'rejection') emit('rejection', m.rejection);
    else emit('protocol-error', { message: `a message with no known body: ${JSON.stringify(m)}` });
  });
  call.on('error', () => {}); // the status event below reports how the stream ended
  call.on('status', (status) => {
    ended = true;
    timers.forEach(clearInterval);
    emit('end', { code: grpc.status[status.code], details: status.details });
    client.close();
    process.exit(0);
  });

  const close = () => {
    if (ended) return;
    emit('closing');
    ended = true;
    timers.forEach(clearInterval);
    call.end();
    setTimeout(() => call.cancel(), 2000).unref();
  };
  process.stdin.on('end', close);
  process.stdin.resume();
  process.on('SIGTERM', close);
}

main();
