package app_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

// TestResponsesMatchReads: what an operation returns is what a read of the
// same object returns afterwards, to the timestamps, which the stores keep
// to the microsecond.
func TestResponsesMatchReads(t *testing.T) {
	srv := apptest.Start(t)
	srv.NewPowerfulUser(t, "alice", "lab")
	alice := srv.As(t, "alice")
	ctx := context.Background()
	for range 5 { // a whole microsecond by chance would hide the difference
		resp, err := alice.Projects.RequestProject(ctx, connect.NewRequest(&trellisv1.RequestProjectRequest{Name: "lab2", Description: "d"}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := alice.Projects.GetProject(ctx, connect.NewRequest(&trellisv1.GetProjectRequest{Name: resp.Msg.GetProject().GetName()}))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(resp.Msg.GetProject(), got.Msg.GetProject()) {
			t.Fatalf("returned %v\nread back %v", resp.Msg.GetProject(), got.Msg.GetProject())
		}
		if _, err := alice.Projects.RemoveProject(ctx, connect.NewRequest(&trellisv1.RemoveProjectRequest{Name: resp.Msg.GetProject().GetName()})); err != nil {
			t.Fatal(err)
		}
	}
}
