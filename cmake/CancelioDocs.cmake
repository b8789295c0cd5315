# The documentation's sequence diagrams: docs/diagrams/<name>.msc, drawn
# from text by mscgen (Debian package mscgen) into docs/diagrams/<name>.svg
# beside each source.  The SVGs are committed, so reading the docs needs no
# tool; after editing a source, remake them with
#     cmake --build <build dir> --target docs
# Without mscgen the target says so and fails.

include_guard(GLOBAL)

set(cio_diagrams
    seed-asyncio
    plan9-vs-posix
    note-interrupts-op
    note-refuses-next)

find_program(CANCELIO_MSCGEN mscgen)
set(cio_diagram_dir "${PROJECT_SOURCE_DIR}/docs/diagrams")
if(CANCELIO_MSCGEN)
    set(cio_svgs "")
    foreach(name IN LISTS cio_diagrams)
        set(svg "${cio_diagram_dir}/${name}.svg")
        add_custom_command(OUTPUT "${svg}"
            COMMAND "${CANCELIO_MSCGEN}" -T svg -o "${svg}" "${cio_diagram_dir}/${name}.msc"
            DEPENDS "${cio_diagram_dir}/${name}.msc"
            COMMENT "mscgen ${name}.msc -> ${name}.svg"
            VERBATIM)
        list(APPEND cio_svgs "${svg}")
    endforeach()
    add_custom_target(docs DEPENDS ${cio_svgs})
else()
    add_custom_target(docs
        COMMAND "${CMAKE_COMMAND}" -E echo "docs: mscgen not found (apt-get install mscgen)"
        COMMAND "${CMAKE_COMMAND}" -E false)
endif()
