# Multi-stage build of pomerium-jit: a static release binary on a slim,
# non-root runtime image listening on port 8000 (like the Go original's).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The production build (scripts/build-production.sh): no demo and its fakes
# (fake Zero, fake signer, simulated Pomerium), and glibc linked in.
RUN cp "$(scripts/build-production.sh)" /pomerium-jit

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --create-home jit
COPY --from=build /pomerium-jit /usr/local/bin/pomerium-jit
USER 10001
WORKDIR /data
ENV PORT=8000 DATA_DIR=/data LOG_FORMAT=json
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["pomerium-jit", "healthcheck"]
ENTRYPOINT ["pomerium-jit"]
CMD ["serve"]
