package jaegerapi

// The JSON documents of Jaeger's query API: the envelope every answer is
// wrapped in and the "UI model" of traces (Jaeger's internal/uimodel).
// Field names, order, omitempty and null-versus-[] follow Jaeger exactly,
// since clients (the Jaeger UI, Grafana) read these bytes.

// envelope is the body of every answer: data, or errors.
type envelope struct {
	Data   any        `json:"data"`
	Total  int        `json:"total"`
	Limit  int        `json:"limit"`
	Offset int        `json:"offset"`
	Errors []apiError `json:"errors"`
}

// apiError is one entry of envelope.Errors. Code is the HTTP status of a
// failed request; a trace that a search by ID did not find has TraceID and
// no Code.
type apiError struct {
	Code    int    `json:"code,omitempty"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}

// uiTrace is one trace.
type uiTrace struct {
	TraceID   string               `json:"traceID"`
	Spans     []uiSpan             `json:"spans"`
	Processes map[string]uiProcess `json:"processes"`
	Warnings  []string             `json:"warnings"`
}

// uiSpan is one span. Flags and the deprecated parentSpanID are never set
// by Jaeger's OTLP translation, so they are always omitted.
type uiSpan struct {
	TraceID       string        `json:"traceID"`
	SpanID        string        `json:"spanID"`
	Flags         uint32        `json:"flags,omitempty"`
	OperationName string        `json:"operationName"`
	References    []uiReference `json:"references"`
	StartTime     uint64        `json:"startTime"` // Unix microseconds
	Duration      uint64        `json:"duration"`  // microseconds
	Tags          []uiKeyValue  `json:"tags"`
	Logs          []uiLog       `json:"logs"`
	ProcessID     string        `json:"processID,omitempty"`
	Warnings      []string      `json:"warnings"`
}

// uiReference is a span reference: the parent (CHILD_OF) or a link.
type uiReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// uiProcess is the service and resource of spans.
type uiProcess struct {
	ServiceName string       `json:"serviceName"`
	Tags        []uiKeyValue `json:"tags"`
}

// uiLog is a span event.
type uiLog struct {
	Timestamp uint64       `json:"timestamp"` // Unix microseconds
	Fields    []uiKeyValue `json:"fields"`
}

// uiKeyValue is a tag or log field; Value's JSON type follows Type.
type uiKeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type,omitempty"`
	Value any    `json:"value"`
}

// uiOperation is an entry of /api/operations.
type uiOperation struct {
	Name     string `json:"name"`
	SpanKind string `json:"spanKind"`
}

// uiDependencyLink is an entry of /api/dependencies.
type uiDependencyLink struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}
