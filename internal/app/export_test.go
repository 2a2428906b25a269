package app

import "context"

// Tidy runs the janitor's work once, for tests.
func (s *Server) Tidy(ctx context.Context) error { return s.tidy(ctx) }
