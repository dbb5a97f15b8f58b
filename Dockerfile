# shala: a static binary on distroless. `docker compose up` builds it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/shala ./cmd/shala

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/shala /shala
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/shala"]
CMD ["serve"]
