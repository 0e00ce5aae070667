// Package wycheproof runs the Wycheproof test vectors through the public KeyRing API.
package wycheproof
