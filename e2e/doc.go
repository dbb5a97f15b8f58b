// Package e2e runs shala's flows through a real Hasura: the stack that
// `docker compose up` starts. It cannot run on machines without Docker; CI
// compiles and vets it (go vet -tags e2e). Run it with `make e2e` once the
// stack is up. Settings (defaults match docker-compose.yml):
//
//	SHALA_E2E_GRAPHQL_URL   http://localhost:8080/v1/graphql
//	HASURA_GRAPHQL_ADMIN_SECRET  dev-admin-secret
//	HASURA_JWT_KEY          dev-jwt-signing-key-at-least-32-characters
//	DATABASE_URL            postgres://postgres:postgres@localhost:5432/shala (optional; for fixtures)
//
// Later capabilities add their flows here.
package e2e
