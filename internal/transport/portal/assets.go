package portal

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets templates
var files embed.FS

// asset is one embedded file served under a name that carries a hash of its
// content: a new release changes the name, so browsers may keep each name
// for a year without ever serving a stale stylesheet.
type asset struct {
	name        string // hashed: portal.3f2a1b9c0d.css
	contentType string
	body, gz    []byte
}

// assetSet holds the embedded assets by logical name (portal.css) and by
// served name.
type assetSet struct {
	byLogical map[string]*asset
	byServed  map[string]*asset
}

// AssetPrefix is where assets are served.
const AssetPrefix = "/assets/"

func loadAssets() (*assetSet, error) {
	s := &assetSet{byLogical: map[string]*asset{}, byServed: map[string]*asset{}}
	err := fs.WalkDir(files, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		base := path.Base(p)
		ext := path.Ext(base)
		sum := sha256.Sum256(body)
		a := &asset{
			name: strings.TrimSuffix(base, ext) + "." + hex.EncodeToString(sum[:5]) + ext,
			body: body,
		}
		switch ext {
		case ".css":
			a.contentType = "text/css; charset=utf-8"
		case ".js":
			a.contentType = "text/javascript; charset=utf-8"
		case ".svg":
			a.contentType = "image/svg+xml"
		default:
			return fmt.Errorf("asset %s: unknown type", p)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return err
		}
		a.gz = buf.Bytes()
		s.byLogical[base], s.byServed[a.name] = a, a
		return nil
	})
	return s, err
}

// url returns where the logical asset is served.
func (s *assetSet) url(logical string) string {
	a, ok := s.byLogical[logical]
	if !ok {
		panic("portal: no asset " + logical) // templates name constants
	}
	return AssetPrefix + a.name
}

// CompressedSize is the gzip-compressed size of every asset together: the
// portal's budget is 100 KB.
func (s *assetSet) compressedSize() int {
	n := 0
	for _, a := range s.byServed {
		n += len(a.gz)
	}
	return n
}

func (s *assetSet) serve(w http.ResponseWriter, r *http.Request) {
	a, ok := s.byServed[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	// The name changes with the content: keep it as long as browsers will.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	body := a.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
