from gate.cli import app

app(prog_name="gate")
