package adminapi

import "net/http"

func (s *Server) statusLeader(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.agent.Leader())
}

func (s *Server) statusPeers(w http.ResponseWriter, r *http.Request) {
	peers, err := s.agent.Peers()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, nonNil(peers))
}
