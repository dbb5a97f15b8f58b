# shala: a static binary on Debian slim with Chromium, which renders the
# certificate PDFs (internal/pdf; fonts are bundled in the binary).
# `docker compose up` builds it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/shala ./cmd/shala

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
COPY --from=build /out/shala /shala
USER nonroot
ENV SHALA_CHROMIUM=/usr/bin/chromium SHALA_CHROMIUM_NO_SANDBOX=true
EXPOSE 8080
ENTRYPOINT ["/shala"]
CMD ["serve"]
