"""The Dash pages: dashboards and their panels, Trends, and the admin page, with their callbacks."""
