package main

import "testing"

// TestRun runs the quickstart end to end, so that CI runs the main job.
func TestRun(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
