package app

import "testing"

func TestStreamingProcedure(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/trellis.v1.Notifications/Watch", true},
		{"/trellis.v1.Notifications/List", false},
		{"/trellis.v1.ApiInfo/GetVersion", false},
		{"/trellis.v1.Notifications/Watch/", false},
		{"/oidc/oauth/token", false},
	}
	for _, tt := range tests {
		if got := streamingProcedure(tt.path); got != tt.want {
			t.Errorf("streamingProcedure(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}
