#!/bin/sh
# Runs once in the vault-init container: writes shala's secrets to KV v2 and
# creates the transit key that signs School Leaving Certificates. Vault in
# dev mode mounts KV v2 at secret/ already. Idempotent.
set -eu
until vault status >/dev/null 2>&1; do sleep 1; done

vault kv put secret/shala \
  webhook_secret="${SHALA_WEBHOOK_SECRET}" \
  operator_password="${SHALA_OPERATOR_PASSWORD}" \
  hasura_jwt_secret="${HASURA_GRAPHQL_JWT_SECRET}" \
  database_url="postgres://postgres:${POSTGRES_PASSWORD}@postgres:5432/shala?sslmode=disable"

vault secrets list | grep -q '^transit/' || vault secrets enable transit
vault read transit/keys/shala-slc >/dev/null 2>&1 || vault write -f transit/keys/shala-slc type=ed25519
echo "vault-init: secrets written to secret/shala, transit key shala-slc ready"
