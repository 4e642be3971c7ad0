from injector.cli import console

console()
