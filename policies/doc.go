// Package policies reads flow policies, rules about which calls the flow
// graph may have, and checks observed edges against them (DESIGN.md
// "Architecture rules (contract)"; docs/architecture-rules.md). It is pure:
// the caller (policies/monitor) reads the flow graph and the declared
// architectures from the store, evaluates every few seconds and reloads
// the file.
//
// # File
//
//	policies:
//	  - name: no-direct-db
//	    deny: {from: "web*", to: "mysql*"}
//	  - name: payments-callers
//	    allow_only: {to: payments, from: [checkout, refunds]}
//	  - name: as-designed
//	    deny_undeclared: lamp
//	    level: service          # service (default), instance, zone, region, namespace
//	lint:
//	  chain_depth: {threshold: 5, severity: warning}
//	  cycle: {enabled: false}
//
// Parse reads one file, Load a file or a directory of *.yml and *.yaml
// files that make one Set. Both are built on yamlfile like the
// alert rules: every problem is a *yamlfile.Error "FILE:LINE: KEY: MESSAGE"
// (unknown keys with a suggestion), all are reported, and a file with any
// error is refused whole, so the caller keeps the set it had. Policy names
// ([A-Za-z0-9_.:-]+) are unique across the files; a lint rule is set in
// one file only.
//
// # Matching
//
// from and to are a glob or a list of globs (any matches): * any run of
// characters ("/" included), ? one character, [abc], [a-z], [!a-z]
// classes, \ escapes. A glob matches a node when it matches the node's ID
// at the policy's level or, at the service and instance levels, its plain
// name (the ID "namespace/name" without "namespace/"): "web*" matches
// shop/web1, and "shop/*" every service of namespace shop.
//
// Set.Check applies the policies of one level to the edges observed at
// that level and returns the violations (Match). deny_undeclared compares
// with DeclaredEdges of a stored architecture, which names declared nodes
// exactly as the flow graph names observed ones; self-calls at the coarse
// levels are never undeclared. A Tracker remembers when each violation was
// first and last seen across evaluations.
//
// # Concurrency
//
// A Set is immutable once returned, and Check, Levels and Problems only
// read it. A Tracker is safe for concurrent use.
package policies
