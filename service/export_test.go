package service

// Stopping lets tests wait until Stop has begun.
func Stopping(s *ProverService) <-chan struct{} { return s.stopping }
