"""`python -m services.ingestion`: serve the ingestion API."""

from services.web.serve import serve

if __name__ == "__main__":
    serve("services.ingestion.app:create_app", port_setting="ingestion_port",
          workers_setting="ingestion_workers")
