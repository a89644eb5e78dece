// Package e2e holds end-to-end tests that run the real collector.
package e2e
