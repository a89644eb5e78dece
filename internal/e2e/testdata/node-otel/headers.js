'use strict';
// Fixture of internal/e2e TestNodeOTelHeaderCorrelation. An HTTP server
// instrumented by @opentelemetry/instrumentation-http, which records the
// request headers baggage and x-request-id on the server span as
// http.request.header.<name> string arrays, is called once by this process
// with those headers; the spans are exported with OTLP/HTTP protobuf to
// FLOWSCOPE_OTLP_TRACES_URL. Prints {"traceId": "..."} on success.
//
// Environment: FLOWSCOPE_OTLP_TRACES_URL (required), FLOWSCOPE_X_REQUEST_ID,
// FLOWSCOPE_BAGGAGE (the request's header values).

const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { ATTR_SERVICE_NAME } = require('@opentelemetry/semantic-conventions');
const api = require('@opentelemetry/api');

const url = process.env.FLOWSCOPE_OTLP_TRACES_URL;
if (!url) {
  console.error('FLOWSCOPE_OTLP_TRACES_URL is not set');
  process.exit(2);
}
// Whatever happens, never outlive the Go test.
setTimeout(() => {
  console.error('timed out');
  process.exit(3);
}, 30000).unref();

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'node-http' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url, timeoutMillis: 10000 }))],
});
provider.register();
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new HttpInstrumentation({
      headersToSpanAttributes: { server: { requestHeaders: ['baggage', 'x-request-id'] } },
    }),
  ],
});

// Required after the instrumentation is registered, so that it is patched.
const http = require('http');

async function main() {
  let serverTraceId = '';
  const server = http.createServer((req, res) => {
    serverTraceId = api.trace.getActiveSpan()?.spanContext().traceId ?? '';
    res.end('ok');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1',
      port,
      path: '/orders',
      headers: {
        'x-request-id': process.env.FLOWSCOPE_X_REQUEST_ID || 'rid-123',
        baggage: process.env.FLOWSCOPE_BAGGAGE || 'correlation_id=corr-r2-3,other=x%20y',
      },
      timeout: 10000,
    }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('request timed out')));
  });
  await new Promise((resolve) => server.close(resolve));
  await provider.forceFlush();
  await provider.shutdown();
  if (!serverTraceId) {
    throw new Error('the server saw no active span: http is not instrumented');
  }
  console.log(JSON.stringify({ traceId: serverTraceId }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
