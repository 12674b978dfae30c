from smolvlm_video.cli.main import main

main()
