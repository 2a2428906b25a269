package verify_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/trellis-testbed/trellis/verify"
)

// claimsKey is the context key under which the middleware leaves the claims.
type claimsKey struct{}

// Example protects an HTTP service with Trellis tokens: a middleware
// verifies each request's bearer token and hands the claims to the handler.
func Example() {
	trellisURL, accessToken, stop := exampleTrellis() // a Trellis server, and a token it issued to "ops"
	defer stop()

	// Once per process: fetch the key set, keep it fresh until Close.
	v, err := verify.New(context.Background(), verify.Options{Issuer: trellisURL})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	requireUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, err := v.VerifyRequest(r)
			if err != nil {
				// Say why to the client, in RFC 6750 terms; never log the token.
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				http.Error(w, "unauthenticated", http.StatusUnauthorized)
				return
			}
			ctx := context.WithValue(r.Context(), claimsKey{}, claims)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims := r.Context().Value(claimsKey{}).(*verify.Claims)
		fmt.Fprintf(w, "hello, %s", claims.Subject)
	})
	service := requireUser(hello)

	for _, auth := range []string{"", "Bearer " + accessToken} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		service.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// 401 unauthenticated
	// 200 hello, ops
}

// exampleTrellis starts a Trellis for Example and logs its admin in.
func exampleTrellis() (url, accessToken string, stop func()) {
	dir, err := os.MkdirTemp("", "trellis-verify-example")
	if err != nil {
		log.Fatal(err)
	}
	tr, stopServer, err := startTrellis(dir)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := tr.loginToken(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	return tr.url, tok, func() {
		stopServer()
		os.RemoveAll(dir)
	}
}
