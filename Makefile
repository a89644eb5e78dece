# Flowscope build tasks. Tools are pinned here and installed into .bin/ with
# `go install` (module proxy only); nothing is taken from $PATH.

GO      ?= go
BIN     := $(CURDIR)/.bin

# Pinned code generation tools (see query/querypb/doc.go).
BUF_VERSION                  := v1.75.0
PROTOC_GEN_GO_VERSION        := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION   := v1.6.2
PROTOC_GEN_GRPC_GATEWAY_VERSION := v2.32.0

BUF                     := $(BIN)/buf-$(BUF_VERSION)
PROTOC_GEN_GO           := $(BIN)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC      := $(BIN)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
PROTOC_GEN_GRPC_GATEWAY := $(BIN)/protoc-gen-grpc-gateway-$(PROTOC_GEN_GRPC_GATEWAY_VERSION)

.PHONY: generate
## generate: regenerate the committed protobuf, gRPC and grpc-gateway code.
generate: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(PROTOC_GEN_GRPC_GATEWAY)
	ln -sf $(notdir $(PROTOC_GEN_GO)) $(BIN)/protoc-gen-go
	ln -sf $(notdir $(PROTOC_GEN_GO_GRPC)) $(BIN)/protoc-gen-go-grpc
	ln -sf $(notdir $(PROTOC_GEN_GRPC_GATEWAY)) $(BIN)/protoc-gen-grpc-gateway
	$(BUF) generate --template query/querypb/buf.gen.yaml --path query/querypb/query.proto

# Each tool is installed under a versioned name, so bumping a version above
# installs the new one on the next `make generate`.
$(BUF):
	$(call go-install,github.com/bufbuild/buf/cmd/buf,$(BUF_VERSION),buf)
$(PROTOC_GEN_GO):
	$(call go-install,google.golang.org/protobuf/cmd/protoc-gen-go,$(PROTOC_GEN_GO_VERSION),protoc-gen-go)
$(PROTOC_GEN_GO_GRPC):
	$(call go-install,google.golang.org/grpc/cmd/protoc-gen-go-grpc,$(PROTOC_GEN_GO_GRPC_VERSION),protoc-gen-go-grpc)
$(PROTOC_GEN_GRPC_GATEWAY):
	$(call go-install,github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway,$(PROTOC_GEN_GRPC_GATEWAY_VERSION),protoc-gen-grpc-gateway)

# go-install(package, version, binary): install package@version as
# $(BIN)/binary-version, in a scratch GOBIN so that a half-built tool never
# takes the final name.
define go-install
	@mkdir -p $(BIN)
	tmp=$$(mktemp -d) && GOBIN=$$tmp $(GO) install $(1)@$(2) && mv $$tmp/$(3) $(BIN)/$(3)-$(2) && rm -rf $$tmp
endef
