package portal

import "testing"

// The whole portal's script and style, compressed as served, stay under
// 100 KB (issue 13).
func TestAssetBudget(t *testing.T) {
	s, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	n := s.compressedSize()
	t.Logf("assets: %d bytes gzip-compressed", n)
	if n >= 100_000 {
		t.Fatalf("assets are %d bytes compressed; the budget is 100 KB", n)
	}
}
