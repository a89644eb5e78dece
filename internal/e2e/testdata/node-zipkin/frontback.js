'use strict';
// Two services in one process, each with its own zipkin-js Tracer and
// HttpLogger reporting Zipkin v1 JSON (the default encoder) to
// FLOWSCOPE_ZIPKIN_URL (the collector's /api/v1/spans). The frontend's
// HTTP server calls the backend over HTTP with B3 headers, so each side
// reports its own half of the shared span:
//
//   frontend SERVER (root) → frontend CLIENT (cs/cr) → backend SERVER (sr/ss, same span ID)
//
// It sends FLOWSCOPE_REQUESTS requests one after another, flushes both
// loggers and prints {"traceIds": [...]}.
const http = require('http');
const fetch = require('node-fetch');
const {Tracer, BatchRecorder, ExplicitContext, Instrumentation, jsonEncoder, option} = require('zipkin');
const {HttpLogger} = require('zipkin-transport-http');

const collector = process.env.FLOWSCOPE_ZIPKIN_URL;
const requests = Number(process.env.FLOWSCOPE_REQUESTS || 20);
if (!collector) {
  console.error('FLOWSCOPE_ZIPKIN_URL is not set');
  process.exit(2);
}

function newTracer(serviceName, httpInterval) {
  const logger = new HttpLogger({
    endpoint: collector,
    jsonEncoder: jsonEncoder.JSON_V1,
    httpInterval,
    fetchImplementation: fetch,
  });
  let failed = null;
  logger.on('error', (err) => { failed = err; });
  const tracer = new Tracer({
    ctxImpl: new ExplicitContext(),
    recorder: new BatchRecorder({logger}),
    localServiceName: serviceName,
  });
  return {tracer, logger, failed: () => failed};
}

// Different flush intervals: the halves of a call land in requests of
// their own, in either order.
const front = newTracer('frontend', 50);
const back = newTracer('backend', 70);

function headerReader(req) {
  return (name) => option.fromNullable(req.headers[name.toLowerCase()]);
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

async function main() {
  const backendServer = http.createServer((req, res) => {
    const port = backendServer.address().port;
    const instr = new Instrumentation.HttpServer({tracer: back.tracer, port});
    back.tracer.scoped(() => {
      const id = instr.recordRequest(req.method, `http://127.0.0.1:${port}${req.url}`, headerReader(req));
      res.end('ok', () => back.tracer.scoped(() => instr.recordResponse(id, 200)));
    });
  });
  const backendPort = await listen(backendServer);
  const backendURL = `http://127.0.0.1:${backendPort}/api`;

  const traceIds = [];
  const frontendServer = http.createServer((req, res) => {
    const port = frontendServer.address().port;
    const srv = new Instrumentation.HttpServer({tracer: front.tracer, port});
    const cli = new Instrumentation.HttpClient({tracer: front.tracer, remoteServiceName: 'backend'});
    front.tracer.scoped(() => {
      const id = srv.recordRequest(req.method, `http://127.0.0.1:${port}${req.url}`, headerReader(req));
      traceIds.push(id.traceId);
      const opts = cli.recordRequest({headers: {}}, backendURL, 'GET');
      const callId = front.tracer.id;
      http.get(backendURL, {headers: opts.headers}, (bres) => {
        bres.resume();
        bres.on('end', () => {
          front.tracer.scoped(() => cli.recordResponse(callId, bres.statusCode));
          res.end('ok', () => front.tracer.scoped(() => srv.recordResponse(id, 200)));
        });
      }).on('error', (err) => { res.statusCode = 502; res.end(String(err)); });
    });
  });
  const frontendPort = await listen(frontendServer);

  for (let i = 0; i < requests; i++) {
    await new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${frontendPort}/`, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      }).on('error', reject);
    });
  }
  // Let the last responses finish (recordResponse runs after res.end).
  await new Promise((r) => setTimeout(r, 20));
  for (const t of [front, back]) {
    t.tracer.recorder.flush();
  }
  for (const t of [front, back]) {
    await flush(t.logger);
    if (t.failed()) throw t.failed();
  }
  backendServer.close();
  frontendServer.close();
  process.stdout.write(JSON.stringify({traceIds}) + '\n');
}

// flush sends what the logger holds and waits for the answers.
function flush(logger) {
  return new Promise((resolve, reject) => {
    const step = () => {
      if (logger.queue.length === 0) {
        resolve();
        return;
      }
      const done = (err) => {
        logger.removeListener('success', ok);
        logger.removeListener('error', bad);
        if (err) reject(err); else step();
      };
      const ok = () => done();
      const bad = (err) => done(err);
      logger.on('success', ok);
      logger.on('error', bad);
      logger.processQueue(logger.fetchImplementation);
    };
    step();
  });
}

main().catch((err) => {
  console.error(err && err.stack || String(err));
  process.exit(1);
});
