// Package deploy holds beacon's deployment files — the container image
// (Dockerfile, docker-entrypoint.sh, docker-compose.yml), the systemd unit
// and the systemd-resolved drop-in, the production Corefiles and the
// Kubernetes manifests — and the tests that hold them to their invariants
// (deploy_test.go: the manifests decoded strictly into the Kubernetes API
// types, the Corefiles the entrypoint renders, no cache in front of
// discovery). It has no code of its own. Its tests, like e2e's, must not
// import beacon's packages: they read the files as an operator's tools
// would. Running the files — the layout of docker-compose.yml as processes
// in network namespaces, the systemd unit through systemd-analyze, the
// production Corefiles through the agent — is in e2e/deploy_test.go,
// which has the built binary.
package deploy
