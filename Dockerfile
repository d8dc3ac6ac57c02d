# The herd image: one static binary on scratch, built offline (no base image is pulled).
# Build it with `make image`, which compiles bin/linux/herd on the host first
# (CGO_ENABLED=0) and copies the host's CA bundle for real Places calls over HTTPS.
FROM scratch
COPY bin/linux/herd /herd
COPY bin/linux/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chown=65532:65532 containers/image/data /data
USER 65532:65532
WORKDIR /data
ENV HERD_LOG_DIR=/data/logs
EXPOSE 12000 12001 12002 12003 12004 8080
ENTRYPOINT ["/herd"]
CMD ["serve", "Goloman"]
