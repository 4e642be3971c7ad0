# URL token rotation without downtime.
#
# There are three token slots; token n is the webhook's token at rotation n and lives in slot n % 3.
# At rotation r (var.token_rotation) the slots hold the tokens of rotations r-1, r and r+1. The
# token secret holds all three, so the function accepts all three, and the webhook URL uses token r.
# Raising token_rotation to r+1 points the URL at token r+1, which every instance has accepted since
# the previous rotation; token r stays valid for one more rotation, and token r-1 is replaced by a
# new token r+2. No call is refused at any step, provided rotations are at least refresh_seconds
# apart (the time an instance keeps a token set).
locals {
  token_slots = ["0", "1", "2"]

  # For each slot, the rotation whose token it holds; when that changes, the slot gets a new token.
  token_slot_rotations = {
    for slot in local.token_slots : slot => one([
      for rotation in [var.token_rotation - 1, var.token_rotation, var.token_rotation + 1] :
      rotation if rotation % 3 == tonumber(slot)
    ])
  }

  webhook_token_slot = tostring(var.token_rotation % 3)
}
