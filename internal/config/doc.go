// Package config defines the configuration of the collector process and
// loads it from defaults, a YAML file, the environment and flags.
//
// # Sources and precedence
//
// Every setting has a built-in default (see Default), a YAML key, an
// environment variable and a flag of `collector serve`. Load applies them in
// this order, each overriding the one before:
//
//  1. built-in defaults;
//  2. the YAML file named by --config (or FLOWSCOPE_CONFIG);
//  3. the FLOWSCOPE_* environment variables (an empty variable is unset);
//  4. the command-line flags.
//
// A setting absent from a source keeps the value of the sources before it.
// docs/configuration.md documents each setting and shows a full file; `collector
// serve --help` prints them with their defaults.
//
// # YAML file
//
// Sections are nested mappings (receivers, store, correlation, log) that
// mirror the named struct fields of Config. Durations are Go duration strings
// ("30s", "168h"); sizes are whole numbers of bytes; lists are YAML
// sequences. A key that is not a setting is an error naming the key and its
// line, so a misspelt setting never goes unnoticed.
//
// # Validation
//
// Load ends with Config.Validate, which reports every invalid setting by its
// YAML key, flag and environment variable. A program that builds a Config by
// other means should call Validate itself before using it.
//
// # Defaults
//
// The defaults let `go run ./cmd/collector` work with nothing else: every
// listener binds to 127.0.0.1, and the store lives in ./data.
package config
