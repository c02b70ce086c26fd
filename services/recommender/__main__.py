"""`python -m services.recommender`: serve the recommender API."""

from services.web.serve import serve

if __name__ == "__main__":
    serve("services.recommender.app:create_app", port_setting="recommender_port",
          workers_setting="recommender_workers")
