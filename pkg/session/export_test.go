package session

// SetInsecureAuth lets tests offer AUTH without TLS.
func SetInsecureAuth(s *Server) { s.insecureAuth = true }
