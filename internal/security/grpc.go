package security

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// UnaryServerInterceptor checks the "authorization" metadata ("Bearer X")
// of each call against the scope of its method, scope(fullMethod). A refused
// call gets codes.Unauthenticated, with a message naming the scope (never
// the token), before the handler runs. The interceptor reads only metadata,
// so it works with any codec. It panics when t is set and scope is nil.
func UnaryServerInterceptor(t *Tokens, scope func(fullMethod string) Scope) grpc.UnaryServerInterceptor {
	checkScopeFunc(t, scope)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := authorizeCall(ctx, t, scope, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls:
// the check happens once, before the handler runs.
func StreamServerInterceptor(t *Tokens, scope func(fullMethod string) Scope) grpc.StreamServerInterceptor {
	checkScopeFunc(t, scope)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := authorizeCall(ss.Context(), t, scope, info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

func checkScopeFunc(t *Tokens, scope func(string) Scope) {
	if t != nil && scope == nil {
		panic("security: gRPC interceptor with Tokens but a nil scope function")
	}
}

// authorizeCall returns nil when the call's first "authorization" metadata
// value grants the scope of fullMethod.
func authorizeCall(ctx context.Context, t *Tokens, scope func(string) Scope, fullMethod string) error {
	if t == nil {
		return nil
	}
	s := scope(fullMethod)
	if !t.Required(s) {
		return nil
	}
	var presented string
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		presented = BearerToken(v[0])
	}
	if t.Allows(s, presented) {
		return nil
	}
	if presented != "" {
		return status.Error(codes.Unauthenticated, fmt.Sprintf("the bearer token does not grant scope %q", s.String()))
	}
	return status.Error(codes.Unauthenticated, fmt.Sprintf(
		"a bearer token with scope %q is required (metadata authorization: Bearer <token>)", s.String()))
}
