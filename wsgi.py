from feather_server import create_app

app = create_app()
