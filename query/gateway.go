package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/query/querypb"
)

// AttrParamPrefix prefixes the REST query parameters that become entries of
// SearchTracesRequest.attributes: attr.http.route=/cart sets attribute
// "http.route" to "/cart".
const AttrParamPrefix = "attr."

// RegisterGRPC registers svc as flowscope.query.v1.QueryService on s.
func RegisterGRPC(s *grpc.Server, svc querypb.QueryServiceServer) {
	querypb.RegisterQueryServiceServer(s, svc)
}

// NewGatewayHandler returns the REST handler of the query API: a grpc-gateway
// ServeMux serving the /api/v1 routes by calling svc in-process (no network
// hop, no gRPC interceptors). Mount it at the root of the HTTP server or
// under a mux that passes /api/v1/ paths unchanged.
//
// Responses are JSON (see the package documentation), errors are
// {"code": HTTP status, "message": text}. ctx bounds nothing today; it is
// passed to the generated registration.
//
// The handler installs the package's query parameter parser in grpc-gateway,
// where it is a process-wide setting (runtime.SetQueryParameterParser). The
// parser changes only the parsing of flowscope.query.v1 messages and
// delegates every other message to runtime.DefaultQueryParser, so other
// gateways in the process keep the default behaviour.
func NewGatewayHandler(ctx context.Context, svc querypb.QueryServiceServer) (http.Handler, error) {
	installQueryParser()
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newGatewayMarshaler()),
		runtime.WithErrorHandler(handleError),
		runtime.WithRoutingErrorHandler(handleRoutingError),
		runtime.WithUnescapingMode(runtime.UnescapingModeAllExceptSlash),
		runtime.WithMiddlewares(unescapeSlashes),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithForwardResponseOption(guessAttachment),
	)
	if err := querypb.RegisterQueryServiceHandlerServer(ctx, mux, svc); err != nil {
		return nil, fmt.Errorf("register query gateway: %w", err)
	}
	return mux, nil
}

// unescapeSlashes decodes the escaped slashes (%2F) that
// runtime.UnescapingModeAllExceptSlash leaves in path parameters, so that
// /api/v1/services/a%2Fb/operations asks for service "a/b". (A name holding
// the three characters "%2F" cannot be addressed.)
func unescapeSlashes(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, pathParams map[string]string) {
		for k, v := range pathParams {
			if strings.Contains(v, "%2") {
				v = strings.ReplaceAll(v, "%2F", "/")
				pathParams[k] = strings.ReplaceAll(v, "%2f", "/")
			}
		}
		next(w, r, pathParams)
	}
}

// jsonOptions are the protojson options of every REST response: lowerCamelCase
// names, zero values and empty lists emitted (so that every documented member
// is present), 64-bit integers as strings per the proto3 JSON mapping.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: true}

// gatewayMarshaler is runtime.JSONPb, except for the responses that carry a
// document of another format, which it writes as they are:
//
//   - a GetTraceResponse becomes the OTLP/JSON document of its trace;
//   - a GetFlowGraphResponse with vizceral_json set becomes that Vizceral
//     JSON document;
//   - a GetLatencyResponse with hdr_log set becomes that HdrHistogram log,
//     as text/plain;
//   - a GetLatencyResponse with guesstimate set becomes that Guesstimate
//     document (application/json; see guessAttachment for its header).
type gatewayMarshaler struct {
	runtime.JSONPb
	// traceJSON encodes TracesData as OTLP/JSON with hex IDs.
	traceJSON func(*tracepb.TracesData) ([]byte, error)
}

func newGatewayMarshaler() *gatewayMarshaler {
	return &gatewayMarshaler{
		JSONPb:    runtime.JSONPb{MarshalOptions: jsonOptions},
		traceJSON: otlpjson.MarshalTracesData,
	}
}

// Marshal implements runtime.Marshaler.
func (m *gatewayMarshaler) Marshal(v any) ([]byte, error) {
	switch r := v.(type) {
	case *querypb.GetTraceResponse:
		var td tracepb.TracesData
		if err := proto.Unmarshal(r.GetTracesData(), &td); err != nil {
			return nil, fmt.Errorf("decode traces data: %w", err)
		}
		return m.traceJSON(&td)
	case *querypb.GetFlowGraphResponse:
		if r.VizceralJson != nil {
			return r.VizceralJson, nil
		}
	case *querypb.GetLatencyResponse:
		if r.HdrLog != nil {
			return []byte(*r.HdrLog), nil
		}
		if r.Guesstimate != nil {
			return []byte(*r.Guesstimate), nil
		}
	}
	return m.JSONPb.Marshal(v)
}

// ContentType implements runtime.Marshaler: text/plain for an HdrHistogram
// log, application/json otherwise.
func (m *gatewayMarshaler) ContentType(v any) string {
	if r, ok := v.(*querypb.GetLatencyResponse); ok && r.HdrLog != nil {
		return hdrLogContentType
	}
	return m.JSONPb.ContentType(v)
}

// NewEncoder implements runtime.Marshaler.
func (m *gatewayMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

// guessAttachment is a grpc-gateway forward-response option: a Guesstimate
// export (GetLatencyResponse.guesstimate) is answered as a download,
// Content-Disposition: attachment; filename="<space name>.guess".
func guessAttachment(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if r, ok := m.(*querypb.GetLatencyResponse); ok && r.Guesstimate != nil {
		w.Header().Set("Content-Disposition", `attachment; filename="`+guessFileName(*r.Guesstimate)+`"`)
	}
	return nil
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, err := json.Marshal(errorBody{Code: code, Message: msg})
	if err != nil { // cannot happen for these types
		b = []byte(`{"code":500,"message":"encode error"}`)
		code = http.StatusInternalServerError
	}
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// handleError is the gateway's runtime.ErrorHandlerFunc: the gRPC status of
// err becomes the HTTP status (runtime.HTTPStatusFromCode) and the message.
func handleError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		writeError(w, hs.HTTPStatus, status.Convert(hs.Err).Message())
		return
	}
	st := status.Convert(err)
	writeError(w, runtime.HTTPStatusFromCode(st.Code()), st.Message())
}

// ReloadRulesPath is the REST path of ReloadRules, the one route that is
// POST (with an empty body or {}); every other route is GET.
const ReloadRulesPath = "/api/v1/rules:reload"

// handleRoutingError is the gateway's runtime.RoutingErrorHandlerFunc:
// unknown paths (404), other methods than the route's (405: GET, or POST for
// ReloadRulesPath) and malformed paths (400).
func handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	var msg string
	switch code {
	case http.StatusNotFound:
		msg = fmt.Sprintf("no such path: %s", r.URL.Path)
	case http.StatusMethodNotAllowed:
		allow := http.MethodGet
		if r.URL.Path == ReloadRulesPath {
			allow = http.MethodPost
		}
		w.Header().Set("Allow", allow)
		msg = fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)
	default:
		msg = strings.ToLower(http.StatusText(code))
	}
	writeError(w, code, msg)
}

var installParserOnce sync.Once

// installQueryParser makes queryParser grpc-gateway's query parameter
// parser. grpc-gateway keeps it in a package variable that its
// ServeMuxOption writes, so the option is applied once, inside a sync.Once,
// to a throwaway mux.
func installQueryParser() {
	installParserOnce.Do(func() {
		runtime.NewServeMux(runtime.SetQueryParameterParser(queryParser{}))
	})
}

// queryPackage is the protobuf package whose request messages queryParser
// parses itself.
const queryPackage = "flowscope.query.v1"

// queryParser is the runtime.QueryParameterParser of the query API. For
// messages of package flowscope.query.v1 it
//
//   - routes attr.KEY=VALUE parameters into the map<string,string>
//     attributes field (KEY may contain dots),
//   - splits comma-separated values of repeated number fields
//     (quantiles=0.5,0.99),
//   - rejects unknown parameters and parameters given twice, and
//   - names the parameter in every error ("invalid limit \"x\": ...").
//
// Each remaining parameter is parsed by runtime.DefaultQueryParser. Messages
// of other packages go to runtime.DefaultQueryParser unchanged.
type queryParser struct{}

var _ runtime.QueryParameterParser = queryParser{}

// Parse implements runtime.QueryParameterParser.
func (queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	var def runtime.DefaultQueryParser
	m := msg.ProtoReflect()
	if m.Descriptor().ParentFile().Package() != queryPackage {
		return def.Parse(msg, values, filter)
	}
	fields := m.Descriptor().Fields()
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic errors
	seen := make(map[protoreflect.Name]string, len(keys))
	for _, key := range keys {
		vals := values[key]
		if name, ok := strings.CutPrefix(key, AttrParamPrefix); ok {
			if err := setAttribute(m, key, name, vals); err != nil {
				return err
			}
			continue
		}
		fd := fields.ByTextName(key)
		if fd == nil {
			fd = fields.ByJSONName(key)
		}
		if fd == nil {
			return fmt.Errorf("unknown parameter %q", key)
		}
		if filter != nil && filter.HasCommonPrefix([]string{string(fd.Name())}) {
			continue // bound from the path
		}
		if other, dup := seen[fd.Name()]; dup {
			return fmt.Errorf("parameter %q given twice (also as %q)", key, other)
		}
		seen[fd.Name()] = key
		if fd.IsMap() {
			return fmt.Errorf("unknown parameter %q", key)
		}
		if fd.IsList() {
			if k := fd.Kind(); k == protoreflect.DoubleKind || k == protoreflect.FloatKind {
				vals = splitCommas(vals)
			}
		} else if len(vals) > 1 {
			return fmt.Errorf("parameter %q given %d times", key, len(vals))
		}
		if err := def.Parse(msg, url.Values{key: vals}, filter); err != nil {
			return paramError(key, err)
		}
	}
	return nil
}

// setAttribute stores an attr.NAME parameter into m's attributes map.
func setAttribute(m protoreflect.Message, key, name string, vals []string) error {
	fd := m.Descriptor().Fields().ByName("attributes")
	if fd == nil || !fd.IsMap() || fd.MapKey().Kind() != protoreflect.StringKind || fd.MapValue().Kind() != protoreflect.StringKind {
		return fmt.Errorf("unknown parameter %q", key)
	}
	if name == "" {
		return fmt.Errorf("invalid %s: empty attribute key", key)
	}
	if len(vals) != 1 {
		return fmt.Errorf("parameter %q given %d times", key, len(vals))
	}
	m.Mutable(fd).Map().Set(protoreflect.ValueOfString(name).MapKey(), protoreflect.ValueOfString(vals[0]))
	return nil
}

// splitCommas splits every value at commas: ["0.5,0.9", "0.99"] gives
// ["0.5", "0.9", "0.99"].
func splitCommas(vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, strings.Split(v, ",")...)
	}
	return out
}

// paramError rewrites an error of runtime.DefaultQueryParser so that it names
// the parameter as the client spelled it.
func paramError(key string, err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("invalid %s %q: %v", key, ne.Num, ne.Err)
	}
	return fmt.Errorf("invalid %s: %v", key, err)
}
