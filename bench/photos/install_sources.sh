#!/usr/bin/env bash
# Installs the Debian packages whose photographs bench/photos/make_photos.py crops, if missing.
set -euo pipefail

PACKAGES=(
  python3-pil                  # make_photos.py's only dependency beyond the standard library
  mate-backgrounds             # 12 photos: /usr/share/backgrounds/mate/nature/
  lomiri-wallpapers-16.04      # 14 photos: /usr/share/backgrounds/*_by_*.jpg
  lomiri-wallpapers-20.04      # 1 photo: Kleiber_by_Lukas_Baubkus.jpg
  plasma-workspace-wallpapers  # 10 photos: /usr/share/wallpapers/<name>/contents/images/
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_sources: all installed"
  exit 0
fi
echo "install_sources: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
